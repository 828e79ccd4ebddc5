from edge_colorizer.cli import main

main()
