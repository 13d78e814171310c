"""Decision-making tasks: choices between alternatives, action selection in cortico-basal ganglia-thalamo-cortical
loops."""
