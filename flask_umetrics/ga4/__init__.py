"""The GA4 connector: credentials, Admin API provisioning, Data API reports, stat collectors.

Needs the ``ga4`` extra (``pip install flask-umetrics[ga4]``); nothing here is imported unless
a GA4 feature is used, so apps without it never load the Google client libraries.
"""
