from statusctl.cli.main import run

run()
