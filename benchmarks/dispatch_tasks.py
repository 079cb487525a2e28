"""The task of benchmarks/dispatch.py on gwcelery's application."""
from gwcelery import app


@app.task(name='bench.dispatch.add')
def add(x, y):
    """The task measured: the same as the bare application's."""
    return x + y
