"""dfijax studio: the systems in a web page (Gradio), over the same library calls as the experiments.

`session.Studio` does the work (DFI edits as an alpha ladder in one engine call, fusion, style
transfer, domain transfer) on pictures in memory; `app.build` lays it out as tabs; `uploads` checks
what users upload. Needs the `app` extra (gradio); `python -m experiments.studio` serves it.
"""

from dfijax.studio.session import Ladder, Studio, StudioConfig  # noqa: F401
