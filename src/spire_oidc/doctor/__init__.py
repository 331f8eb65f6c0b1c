"""``oidc-discovery-provider doctor``: check a deployment against what relying parties require.

``observe`` fetches (the only I/O), ``checks`` judges (pure, using the rules in ``parties``),
``report`` renders, ``command`` is the command line.
"""
