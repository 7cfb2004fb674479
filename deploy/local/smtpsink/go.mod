module espace/smtpsink

go 1.26
