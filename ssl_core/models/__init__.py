"""The engine: estimators with a scikit-learn API (fit(X, y) with -1 = unlabeled,
predict_proba, transform, save/load), one module per method, plus what they share.

    base.py              what every estimator shares (input checks, budget, save/load)
    registry.py          methods by name: make_estimator, load_model
    default_method.py    the default: graph propagation distilled into a CNN
    graph_classifier.py  graph propagation alone (the default's first stage)
    ssl_gan.py           the semi-supervised GAN (K classes + fake)
    vae.py               the VAE (the map's latent space, samples)
    vae_method.py        the VAE-based semi-supervised classifier
    baseline.py          the supervised-only baseline
    propagation.py       kNN graph weights, Poisson and Laplace learning
    preprocessing.py     deskewing and the PCA projection of pixels
    classifier.py        training and inference of any classifier network
    cnn.py, mlp.py       the networks

May import: training, project, progress, neighbours.
"""
