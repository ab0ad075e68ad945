from sn19.cli import main

main()
