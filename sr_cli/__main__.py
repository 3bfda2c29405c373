"""``python -m sr_cli`` runs the srtool command line."""

from sr_cli.cli.app import main

if __name__ == "__main__":
    main()
