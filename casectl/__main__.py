from casectl.cli.app import main

main()
