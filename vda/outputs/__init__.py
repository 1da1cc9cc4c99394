"""Output formats of a depth run: one record per format (:mod:`vda.outputs.formats`), the files behind them
(:mod:`vda.outputs.writers`: staging, the npz store, PNG and preview writers, disk checks), the writers of EXR,
PLY and the 16-bit depth video, and the preview normalisation (:mod:`vda.outputs.normalize`)."""
