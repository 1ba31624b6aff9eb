"""The latent map: the UMAP layout of the VAE latents (layout.py) and the map files the app
reads (map_files.py). The job that trains the VAE and builds the map is jobs/map_job.py.

May import: project, data, neighbours, progress.
"""
