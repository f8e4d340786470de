"""One module per resource; each route takes the caller (:data:`~..security.Owner`) and acts
on their objects only: another user's id answers 404, as an unknown one does."""
