"""Images in: sources (sources.py, public_datasets.py), decoding with guards (decode.py), zip
archives with zip-slip and bomb guards (zip_archive.py), the importer that normalises
everything into one uint8 array (importer.py), read access to a project's images and ground
truth (collection.py), and contact-sheet thumbnails (thumbnails.py).

May import: project, progress.
"""
