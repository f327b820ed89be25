"""Serving: which version serves each project and the loaded model (models.py, memoised loads in
memo.py), `/predict` with downloads overlapping inference (predictor.py), and the predictions'
scores (the confidence Label Studio shows) with the priority its queue is ordered by (scoring.py)."""
