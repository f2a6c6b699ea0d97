"""The project's file formats: JSON lines that survive a crash mid-write (append, repair a torn tail, resume)."""
