"""The web dashboard: server-rendered pages over the façade, served beside the HTTP API.

* :mod:`.site`: ``create_site(settings)``, the API of :mod:`personal_assistant.api` with the
  dashboard's pages and static files (what ``pa serve`` and ``pa run`` serve).
* :mod:`.session`: signing in with an API key (a cookie) and the forms' CSRF tokens.
* The routes: :mod:`.signin`, :mod:`.pages` (what only reads), :mod:`.task_forms` (the task
  form and its preview), :mod:`.actions` (the buttons), :mod:`.channel_forms` (the channels
  page, its form and buttons); :mod:`.errors`: errors as pages.
* :mod:`.rendering`: the templates; :mod:`.schedule_form` and :mod:`.chart`: pure helpers.

No inline script or style anywhere: the Content-Security-Policy is ``default-src 'self'``.
"""
