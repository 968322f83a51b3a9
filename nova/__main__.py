from nova.cli import app

app()
