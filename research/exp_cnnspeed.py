import torch,time,torch.nn as nn
torch.set_num_threads(2)
def net(c1,c2,c3,fc):
    return nn.Sequential(nn.Conv2d(1,c1,3,padding=1),nn.ReLU(),nn.MaxPool2d(2),
        nn.Conv2d(c1,c2,3,padding=1),nn.ReLU(),nn.MaxPool2d(2),
        nn.Conv2d(c2,c3,3,padding=1),nn.ReLU(),nn.AdaptiveMaxPool2d(1) if fc==0 else nn.MaxPool2d(2),nn.Flatten(),
        nn.Linear(c3 if fc==0 else c3*9,max(fc,10)) if True else None, nn.ReLU(), nn.Linear(max(fc,10),10))
for cfg in [(16,32,64,0),(32,64,128,0),(16,32,64,128),(32,32,64,128),(32,64,64,128)]:
  for cl in [False,True]:
    for bs in [128,512]:
        m=net(*cfg)
        if cl: m=m.to(memory_format=torch.channels_last)
        opt=torch.optim.Adam(m.parameters(),1e-3)
        x=torch.randn(bs,1,28,28); y=torch.randint(0,10,(bs,))
        if cl: x=x.contiguous(memory_format=torch.channels_last)
        for i in range(8):
            if i==3: t=time.time()
            loss=nn.functional.cross_entropy(m(x),y); opt.zero_grad(); loss.backward(); opt.step()
        dt=(time.time()-t)/5
        with torch.no_grad():
            t2=time.time(); m(torch.randn(2048,1,28,28)); inf=2048/(time.time()-t2)
        print(cfg,'cl' if cl else '  ',bs,f'train {bs/dt:.0f} img/s  infer {inf:.0f} img/s',flush=True)
