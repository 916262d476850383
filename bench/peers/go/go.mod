module intake.example/peer

go 1.19
