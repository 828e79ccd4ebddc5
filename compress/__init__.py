"""Compression of trained colorizers: structured pruning, knowledge distillation and INT8, each step a model."""
