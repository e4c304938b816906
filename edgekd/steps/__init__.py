"""The build steps, one module each; `edgekd.pipeline` lists them in order.

Each module has `run(ctx: BuildContext) -> None`: it reads earlier steps' folders through
`ctx.dir(name)` and writes only into `ctx.work` (its staging folder).
"""
