"""Mail reports over SMTP (``smtp:`` in the config, ``smtp:`` in a pipeline's
reporter actions): the sender thread that talks to the mail server."""
