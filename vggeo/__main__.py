from vggeo.cli import main

main()
