from costguard.cli import main

main()
