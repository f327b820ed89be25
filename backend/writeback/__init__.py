"""What goes back to Label Studio: predictions of newly created tasks (newtasks.py), every task's
prediction refreshed after a publish or rollback (refresh.py), through the one Label Studio client
(lsclient/, from `Projects.api`)."""
