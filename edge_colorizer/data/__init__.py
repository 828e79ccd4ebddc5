"""Offline data: the Qt .rcc reader, the Debian photo pools and the training dataset."""
