from rdistill.cli import main

main()
