"""`python -m musicgen ...`.

Guarded so that re-importing this module (multiprocessing's spawn start method
re-imports the main module in every child, as `ddp_spawn` and DataLoader
workers on macOS do) never runs the command line a second time.
"""

from musicgen.cli import main

if __name__ == "__main__":
    main()
