// Users of the network see the description it is built from.
@_exported import Graph
