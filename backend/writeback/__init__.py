"""What goes back to Label Studio: predictions of newly created tasks (newtasks.py), every task's
prediction refreshed after a publish or rollback (refresh.py), over the Label Studio REST calls
(lsapi.py)."""
