"""Serving: which version serves each project and the loaded model (models.py, memoised loads in
memo.py), `/predict` with downloads overlapping inference (predictor.py), and the priority scores
Label Studio's queue orders by (scoring.py)."""
