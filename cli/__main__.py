from dnode.cli.main import main

main()
