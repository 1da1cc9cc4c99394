"""The inference command (``run_infer.py``): one input (:mod:`vda.infer.single`), a dataset of videos
(:mod:`vda.infer.dataset`), its schema (:mod:`vda.infer.config`) and the graph export (:mod:`vda.infer.export`)."""
