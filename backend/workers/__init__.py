"""Process entry points for trainings outside the API process: the RQ worker (rqworker.py) and the
function its work horses run (rqtask.py), and the child of `TASVEER_TRAIN_IN=process`
(trainchild.py). Each builds a `Backend`; nothing in backend/ imports them (RQ and the child
process name them by string)."""
