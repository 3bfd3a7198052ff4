from cutout.cli.main import main

main()
