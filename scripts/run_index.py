"""Execute nbs/index.ipynb in place (outputs kept), from nbs/ as nbdev_test runs it:
`make readme` then renders README.md."""
import os
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

nbs = Path(__file__).resolve().parents[1]/'nbs'
os.chdir(nbs)
nb = read_nb(nbs/'index.ipynb')
CaptureShell().run_all(nb, exc_stop=True)
write_nb(nb, nbs/'index.ipynb')
