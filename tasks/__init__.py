"""Thin Celery tasks over the ``spreports`` library; each has a stable ``spreports.<verb>`` name."""

# Python started in the checkout has the checkout on sys.path: this package is `spreports.tasks` (pyproject.toml
# maps it into the package), never a second module named `tasks`.
if __name__ != "spreports.tasks":
    raise ImportError("tasks is the package spreports.tasks: import it by that name")
