"""What every service of the network is built from: configuration, database, surfaces and their auth
policies, the worker, migrations and the command line. Both the exchange and the nodes import it; it
knows nothing of either."""
