from weam.cli import main

main()
