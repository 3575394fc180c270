"""Data helpers: the IDX and PNG codecs, the offline sample, the MNIST download, and digits
rendered as people send them."""
