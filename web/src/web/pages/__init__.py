"""The member space's pages, by area: identity (registration, log-in, links), the space
(dashboard, profile), claims, documents and the directory."""
