"""One router per CDS Hooks resource: discovery, services, feedback."""
