"""Adapters from public dataset formats to vlmalign examples (``conf/data/{rlaif_v,vlfeedback,...}.yaml``).

One module per format turns a row into ``Record``s (``base.py``); ``images.py`` opens inline bytes or
paths; ``validation.py`` holds the row checks and the ``data.on_error=raise|skip`` policy. Files are read
and checked by ``vlmalign.data.file_dataset``; ``vlmalign.data.file_datamodule.FileDataModule`` trains on them.
"""
