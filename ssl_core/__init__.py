"""ssl_core: the Streamlit-free core library of Latentlab (data loading, embeddings, labels)."""
