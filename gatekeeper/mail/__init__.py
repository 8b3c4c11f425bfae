"""Mail reports over SMTP (``smtp:`` in the config, ``smtp:`` in a pipeline's
reporter actions): the durable outbox of mails (``outbox``) and the sender
thread that talks to the mail server (``sender``)."""
