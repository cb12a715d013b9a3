"""Allow ``python -m follicle``."""

from follicle.cli import main

if __name__ == "__main__":
    main()
