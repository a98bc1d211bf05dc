"""`python -m dirsync` is the `dirsync` command."""

from dirsync.cli import main

main()
