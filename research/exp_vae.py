import time, sys, numpy as np, torch
torch.set_num_threads(2)
from engine.data import *; from engine.graph import *; from engine.features import *; from engine.vae import *
xtr,ytr,xte,yte=load_dataset('mnist')
X=to_float(np.concatenate([xtr,xte])); Y=np.concatenate([ytr,yte])
for ds in [False,True]:
  Xi=(deskew(X) if ds else X).reshape(70000,-1).clip(0,1)
  for ep in [10,20]:
    t=time.time(); m=train_vae(Xi,VAEConfig(epochs=ep)); tv=time.time()-t
    Z=encode_mean(m,Xi); t=time.time(); idx,dist=knn(Z,10); W=knn_graph(idx,dist); tk=time.time()-t
    r=[]
    for seed in range(3):
        lab=sample_labels(ytr,10,seed)
        for meth,f in [('poisson',poisson_learning),('spread',label_spreading)]:
            u=f(W,lab,ytr[lab],10); r.append(f'{meth}{seed}:{np.mean(u.argmax(1)[60000:]==yte):.4f}')
    print(f'deskew={ds} ep={ep} vae={tv:.0f}s knn={tk:.0f}s',' '.join(r),flush=True)
