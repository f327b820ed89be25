"""The collection seen whole, from the embeddings the project already has: every indexed task's
vector, label and prediction in one snapshot (snapshot.py), for near-duplicate groups, unusual
photos, similar-photo search and the embedding map. Nothing here trains; reading a snapshot costs
Label Studio two requests (the task count and the annotated tasks), whatever the project's size."""
