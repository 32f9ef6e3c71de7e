from lstmimg.cli import main

main()
