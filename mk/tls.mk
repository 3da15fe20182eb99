tls_session_LIBS = -lgnutls
