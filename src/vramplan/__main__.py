from vramplan.cli import main

main()
