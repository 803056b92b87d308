"""Clustering: k-means and HDBSCAN, served as a cluster and a distance.

See docs/unsupervised.md.
"""

from shipyard.tasks.clustering.task import ClusteringTask

__all__ = ["ClusteringTask"]
